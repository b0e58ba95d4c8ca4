"""The reference miner: ``python neurons/miner.py --netuid 1 --wallet.name miner --wallet.hotkey default``.

The bittensor-convention wrapper over the packaged entry point, ``subnet_proxy.miner.main``
(also the ``subnet-proxy-miner`` command and ``python -m subnet_proxy.miner``).
"""

import sys

from subnet_proxy.miner.main import main

if __name__ == "__main__":
    sys.exit(main())
