"""View models: what the screens show, as plain data and pure functions (runs rows, live
series, the New-run form, heatmap scales, chart axes and lines, overlays) plus the small
readers they need (prefs, process stats, the Runs table's extra columns). No Textual here:
tests check them without a terminal, and screens and widgets import them, never the reverse."""
