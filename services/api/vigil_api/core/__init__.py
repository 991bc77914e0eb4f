"""What every route and process of the API shares: settings, clients, keys, middleware, errors."""
