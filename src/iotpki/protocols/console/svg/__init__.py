"""Pictures drawn on the server as inline SVG (no script, no inline style: presentation
attributes and the console's style sheet classes only)."""
