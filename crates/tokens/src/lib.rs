//! OAuth token model: secret newtypes, expiry with a buffer, token-response parsing.
