"""Reusable widgets: heatmap, curves, GPU sparklines."""
