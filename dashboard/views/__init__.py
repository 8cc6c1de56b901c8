"""Dashboard views, one module per resource."""
