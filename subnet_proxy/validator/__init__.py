"""The validator: forward loop, dendrite fan-out, miner selection, scores, weights, synthetic challenges."""
