//! Provider registry and OAuthService: OAuth 2.1 + PKCE sign-in for command-line programs.
