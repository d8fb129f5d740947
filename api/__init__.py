"""The HTTP service: ``create_app(settings)`` builds the FastAPI app; see the README section on the service."""

from api.app import create_app

__all__ = ["create_app"]
