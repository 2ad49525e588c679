"""ServiceTitan connector (v2 API). Only its rate budget exists so far."""
