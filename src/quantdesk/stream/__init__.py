"""The real-time stream: one authenticated WebSocket for ticks and private trading events."""
