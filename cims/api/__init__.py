"""The integration REST API, /api/v1/ (Django REST framework; schema by drf-spectacular).

The API is another door into the same rules as the UI, never a second set of them:

- who: a per-integration ``accounts.ApiToken`` acting as its service user (``authentication``),
  or a signed-in staff member's session for the browsable docs;
- what: the model permission of the service user's role (``permissions.ApiAccess``), a read-only
  token refused any write, and every object fetched through the app's ``visible_to(user)`` scope
  (another rep's customer is a 404, as in the UI);
- how: each app's serializers validate through the UI's own forms and services, personal fields are
  masked by role (``views.PersonalDataMixin``), fields the role may not set are refused by name
  (``views.StrictFieldsMixin``), creates honour ``Idempotency-Key`` (``idempotency``), history
  names the token (``history``), bulk reads of personal data are access-logged;
- errors: JSON ``{"error": {"code", "message", "fields"}}`` in the request's language
  (``errors``); a per-token rate limit answers 429 with Retry-After (``throttling``).

Each app registers its endpoints in its own ``api.py`` (``register(router)``); ``cims.api.urls``
collects them.
"""
