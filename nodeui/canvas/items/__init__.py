"""Graphics items of the canvas: nodes, links, groups, reroutes, run-state overlays, previews."""
