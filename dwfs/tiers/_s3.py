"""A remote in an S3 bucket (AWS, MinIO, Ceph RGW, R2, B2: anything that speaks S3).

boto3 finds the endpoint, region and credentials where every AWS tool does:
AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID and
friends, AWS_PROFILE, ~/.aws/config and ~/.aws/credentials. Chosen over
obstore on evidence: against the same server both moved 32 MiB objects and
ranged reads at the same speed (docs/performance.md), and boto3 reads the AWS
config and credentials files that users already have.

An S3 PUT is atomic, and durable when it returns. Requests time out (connect
and read, TIMEOUT seconds) and are retried with backoff by botocore's standard
retry mode; what still fails becomes a RemoteError or a TierUnavailable.
"""

from __future__ import annotations

from typing import Any

from dwfs.errors import ObjectMissing, RemoteError, TierUnavailable
from dwfs.tiers._backend import MAX_OBJECT, check_name
from dwfs.tiers._url import RemoteURL
from dwfs.types import Buffer

TIMEOUT = 20
ATTEMPTS = 4
_MISSING = ("NoSuchKey", "404", "NotFound")
_REFUSED_CREDENTIALS = (
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "403",
    "ExpiredToken",
    "InvalidToken",
)


class S3Backend:
    """Objects under one bucket's prefix."""

    def __init__(self, url: RemoteURL, timeout: float = TIMEOUT) -> None:
        import boto3
        import botocore.config

        self._url = str(url)
        self._bucket = url.location
        self._prefix = f"{url.prefix}/" if url.prefix else ""
        config = botocore.config.Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": ATTEMPTS, "mode": "standard"},
            max_pool_connections=16,
            # Checksums only where S3 requires them: many S3-compatible servers (rclone,
            # older MinIO, R2, B2) send a whole object's checksum with a ranged GET,
            # which botocore then finds wrong; every byte is authenticated by its AEAD.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        try:
            self._client = boto3.session.Session().client("s3", config=config)
        except Exception as exc:  # botocore's configuration errors share no base class
            raise RemoteError(f"{self._url}: the S3 client cannot be set up: {exc}") from None

    @property
    def url(self) -> str:
        return self._url

    def _key(self, name: str) -> str:
        return self._prefix + check_name(name)

    def put(self, name: str, data: Buffer) -> None:
        self._call("write", name, "put_object", Key=self._key(name), Body=bytes(data))

    def get(self, name: str, start: int = 0, length: int | None = None) -> bytes:
        if length == 0:
            return b""
        end = "" if length is None else str(start + length - 1)
        reply = self._call(
            "read", name, "get_object", Key=self._key(name), Range=f"bytes={start}-{end}"
        )
        try:
            body: bytes = reply["Body"].read()
        except Exception as exc:  # a connection cut mid-body: urllib3's or botocore's
            raise TierUnavailable(f"{self._url} stopped sending {name}: {exc}") from None
        if length is not None and len(body) != length:
            raise RemoteError(f"object {name} on {self._url} is shorter than dwfs wrote it")
        return body

    def size(self, name: str) -> int | None:
        try:
            reply = self._call("read", name, "head_object", Key=self._key(name))
        except ObjectMissing:
            return None
        length = reply.get("ContentLength")
        if type(length) is not int or not 0 <= length <= MAX_OBJECT:
            raise RemoteError(f"{self._url} reports a size for {name} no object of dwfs has")
        return length

    def list(self, prefix: str) -> list[str]:
        names: list[str] = []
        token: dict[str, Any] = {}
        while True:
            reply = self._call(
                "list", prefix, "list_objects_v2", Prefix=self._prefix + prefix, **token
            )
            for item in reply.get("Contents", []):
                key = item.get("Key", "")
                if isinstance(key, str) and key.startswith(self._prefix):
                    names.append(key[len(self._prefix) :])
            if not reply.get("IsTruncated"):
                return sorted(names)
            token = {"ContinuationToken": reply["NextContinuationToken"]}

    def delete(self, name: str) -> None:
        self._call("delete", name, "delete_object", Key=self._key(name))

    def close(self) -> None:
        self._client.close()

    def _call(self, what: str, name: str, method: str, **kwargs: Any) -> dict[str, Any]:
        import botocore.exceptions as errors

        try:
            reply: dict[str, Any] = getattr(self._client, method)(Bucket=self._bucket, **kwargs)
            return reply
        except errors.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            raise self._refused(what, name, code) from None
        except errors.NoCredentialsError:
            raise RemoteError(
                f"{self._url}: no S3 credentials: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or ~/.aws/credentials"
            ) from None
        except (errors.EndpointConnectionError, errors.ConnectionError) as exc:
            raise TierUnavailable(f"{self._url} cannot be reached: {exc}") from None
        except errors.BotoCoreError as exc:
            raise TierUnavailable(f"{self._url} failed to {what} {name}: {exc}") from None

    def _refused(self, what: str, name: str, code: str) -> RemoteError:
        if code == "NoSuchBucket":
            return RemoteError(
                f"{self._url}: bucket {self._bucket} does not exist: create it or fix the URL"
            )
        if code in _REFUSED_CREDENTIALS:
            return RemoteError(
                f"{self._url} refused the credentials ({code}): check AWS_ACCESS_KEY_ID, "
                "AWS_PROFILE or ~/.aws/credentials"
            )
        if code in _MISSING:
            return ObjectMissing(f"object {name} is missing from {self._url}")
        if code in ("InvalidRange", "416"):
            return RemoteError(f"object {name} on {self._url} is shorter than dwfs wrote it")
        if code.startswith("5") or code in ("SlowDown", "ServiceUnavailable", "InternalError"):
            return TierUnavailable(f"{self._url} failed to {what} {name} ({code})")
        return RemoteError(f"{self._url} refused to {what} {name} ({code})")
