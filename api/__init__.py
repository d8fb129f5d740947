"""The HTTP service (issue #4): ``create_app(settings)`` builds the FastAPI app; see ``api/README_section_api.md``."""

from api.app import create_app

__all__ = ["create_app"]
