"""The Firestore TaskStore (google-cloud-firestore AsyncClient): one queue for many processes."""

from subnet_proxy.store.firestore.store import FirestoreTaskStore

__all__ = ["FirestoreTaskStore"]
