"""``python -m subnet_proxy.miner``: the reference miner (see ``subnet_proxy.miner.main``)."""

import sys

from subnet_proxy.miner.main import main

sys.exit(main())
