"""The HTTP API: the Flutter app's endpoints and the asynchronous scan form.

``app`` builds the FastAPI application; ``models`` holds request and error bodies; ``auth`` the
key check and the access policy; ``fastpath`` the body cap and repeated scans answered from kept
bytes; ``answers`` those bytes; ``jobs`` the asynchronous scans; ``routes`` and ``scans`` the
endpoints.
"""

from gateway.http_api.app import create_app

__all__ = ["create_app"]
