"""The five onbehalf services; they never import each other."""
