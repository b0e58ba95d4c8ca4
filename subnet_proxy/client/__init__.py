"""Python client of the side-server: async ``ProxyClient`` (clients, admins, signing neurons) and a small sync wrapper.

Requests and responses use the server's own pydantic models, so a client cannot drift from the API.
Errors come back as ``ProxyError`` with the server's status, code and message. Requests go through
``outbound.OutboundHTTP``: never a redirect (a 3xx is ``ProxyError`` ``redirect_refused``), and
connections only where the ``OutboundPolicy`` allows (a URL the user typed may be loopback; a URL
someone else named, such as a synapse's ``delivery_url``, is checked: the miner's ``Deliverer``
passes a public-only policy). ``verify_webhook`` checks a webhook request's ``X-Signature`` on the
receiving end (``subnet_proxy.webhook_signature``).
"""

from subnet_proxy.client.proxy import ProxyClient
from subnet_proxy.client.responses import MAX_JSON_BYTES, ProxyError, TaskResult
from subnet_proxy.client.sync import SyncProxyClient
from subnet_proxy.webhook_signature import SIGNATURE_HEADER, WebhookSignatureError, verify_webhook

__all__ = ["MAX_JSON_BYTES", "SIGNATURE_HEADER", "ProxyClient", "ProxyError", "SyncProxyClient", "TaskResult",
           "WebhookSignatureError", "verify_webhook"]
