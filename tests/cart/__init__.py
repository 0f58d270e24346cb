"""Cart: locks and take-over, versions, saved lists."""
