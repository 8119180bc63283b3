"""SigV4 for API Gateway (`execute-api`) with botocore's signer.

Credentials come from botocore's standard chain (environment, shared config
and credentials files, SSO, web identity, container and instance metadata),
which refreshes temporary ones, or are given explicitly. botocore is imported
here only, so an unsigned client never needs it at import time.
"""

from .errors import RequestError

SERVICE = "execute-api"


class Signer:
    """Signs requests for `service` in `region`.

    `credentials` is a botocore Credentials object (static, or refreshable
    as the chain returns them), an (access_key, secret_key[, token]) tuple,
    or None for the standard chain.
    """

    def __init__(self, region, credentials=None, service=SERVICE):
        from botocore.credentials import Credentials

        if credentials is None:
            import botocore.session

            credentials = botocore.session.get_session().get_credentials()
            if credentials is None:
                raise RequestError("no AWS credentials found in the standard chain")
        elif isinstance(credentials, tuple):
            credentials = Credentials(*credentials)
        self._credentials = credentials
        self.region = region
        self.service = service

    def sign(self, method, url, headers, body):
        """The headers to send: `headers` plus Authorization, X-Amz-Date
        (and X-Amz-Security-Token for temporary credentials), signing the
        method, URL, headers and body. Called for every attempt, so each
        carries a fresh date and refreshed credentials."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        # Frozen: a refresh between reading the key and the token would
        # otherwise mix two credential sets.
        frozen = self._credentials.get_frozen_credentials()
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        try:
            SigV4Auth(frozen, self.service, self.region).add_auth(request)
        except Exception as e:  # botocore raises several unrelated types
            raise RequestError(f"signing: {type(e).__name__}") from e
        return dict(request.headers.items())
