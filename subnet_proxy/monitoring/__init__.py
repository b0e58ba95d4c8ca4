"""What operators see of a running validator: loop health, per-kind metrics, the dashboard's state.

The server shows it (``/api/v1/health``, ``/metrics``, ``/dashboard``) through the ``Monitor``
interface; the validator implements it (``validator/monitor.py``) over its own loops, so the
server never imports the validator and an ingestion-only server simply has no monitor.
"""

from subnet_proxy.monitoring.base import LoopCheck, Monitor

__all__ = ["LoopCheck", "Monitor"]
