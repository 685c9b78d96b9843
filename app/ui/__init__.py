"""The web playground at ``/ui``: static files (plain JS and CSS, no build step) served by the gateway."""
