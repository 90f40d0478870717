"""Auth domain: operator tokens with roles, enrollment tokens, device credentials, the
interceptor."""
