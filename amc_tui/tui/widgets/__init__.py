"""Widgets that are not screens: heatmap, curves, GPU cards, the Runs table, the keys panel."""
