"""What orders consumes: nothing yet; it asks catalog for prices by request-reply (libs.common.quotes)."""
