"""The attribution engine: plain PyTorch, no Django or Celery imports (see STYLE.md)."""
