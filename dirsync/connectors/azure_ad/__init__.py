"""Azure AD (Entra ID) through Microsoft Graph: msal tokens, the httpx client, delta queries."""
