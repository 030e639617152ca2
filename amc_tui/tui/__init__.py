"""The Textual app (issue 5). Nothing here imports torch, timm or torchvision: the app must
start fast and work on a box whose GPU stack is broken.

- app.py: the App (navigation, run actions, command palette); bench.py: first-paint probe
- registry.py: the screen registry, the app's one lazy-load point (screens and run actions
  by "module:attribute", imported on first use); run_actions.py: stop and resume
- keys.py: the key registry, every key the app binds in one table
- models/: view models, no Textual (rows, series, form, scales, axes, overlays, prefs)
- widgets/: widgets that are not screens (heatmap, curves, GPU cards, Runs table, keys panel)
- screens/: one module per screen, the dialogs, and the screen bases
"""
