"""The proxy validator: ``python neurons/proxy_validator.py --netuid 1 --wallet.name validator ...``.

The bittensor-convention wrapper over the packaged entry point, ``subnet_proxy.validator.main``
(also the ``subnet-proxy-validator`` command and ``python -m subnet_proxy.validator``).
"""

import sys

from subnet_proxy.validator.main import main

if __name__ == "__main__":
    sys.exit(main())
