"""REST API routers; `nezuko/api.py` assembles them under /api/v1/."""
