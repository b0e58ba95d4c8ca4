"""``python -m subnet_proxy.validator``: the validator neuron (see ``subnet_proxy.validator.main``)."""

import sys

from subnet_proxy.validator.main import main

sys.exit(main())
