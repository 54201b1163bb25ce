"""One module per screen; each module's views are listed in `console.routes`."""
