"""The registry's API (model cards as JSON) joins here when the app grows into the registry."""
