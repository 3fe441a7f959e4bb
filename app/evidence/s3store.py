"""Evidence contents in an S3-compatible bucket (AWS S3; MinIO, Ceph RGW, the S3 endpoints of Alibaba OSS or
Tencent COS): the object <EVIDENCE_S3_PREFIX><sha256>. Chosen by EVIDENCE_STORE=app.evidence.s3store:S3Store
with the EVIDENCE_S3_* settings (app/config.py). Credentials are never read from the app's config: boto3 finds
them itself (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity, the instance's role).

put stores a content once (an object already there is not written again, and the write is conditional on
there being none) and sends its SHA-256, which the server checks against the bytes it received; get checks
the SHA-256 of what came back. A store that cannot be reached or refuses raises StoreUnavailable (nothing
stored, nothing handed out); a missing object is FileNotFoundError, as with the directory store."""
import base64
import hashlib
import logging

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .store import ContentMismatch, Stored, StoreUnavailable, check_digest, is_digest

log = logging.getLogger(__name__)
NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
ALREADY_THERE = {"412", "PreconditionFailed"}               # a concurrent put of the same object came first
IN_FLIGHT = {"409", "ConditionalRequestConflict"}            # …and has not finished: it may still fail
ENCRYPTIONS = {"AES256", "aws:kms", "aws:kms:dsse"}
ADDRESSING = {"auto", "path", "virtual"}


def client_config(config) -> Config:
    """Bounded waits and a few retries (botocore's standard mode: throttling and 5xx, with backoff);
    checksums only where we ask for them (some S3-compatible servers refuse botocore's default CRC32 trailers)."""
    timeout = float(config.get("EVIDENCE_S3_TIMEOUT_SECONDS") or 30)
    style = config.get("EVIDENCE_S3_ADDRESSING_STYLE") or "auto"
    if style not in ADDRESSING:
        raise ValueError(f"EVIDENCE_S3_ADDRESSING_STYLE must be one of {sorted(ADDRESSING)}, not {style!r}")
    return Config(connect_timeout=min(timeout, 5.0), read_timeout=timeout,
                  retries={"mode": "standard", "max_attempts": int(config.get("EVIDENCE_S3_MAX_ATTEMPTS") or 3)},
                  s3={"addressing_style": style}, request_checksum_calculation="when_required",
                  response_checksum_validation="when_required")


class S3Store:
    def __init__(self, config):
        self.bucket = config.get("EVIDENCE_S3_BUCKET")
        if not self.bucket:
            raise ValueError("EVIDENCE_S3_BUCKET must name the bucket of the S3 evidence store")
        self.prefix = config.get("EVIDENCE_S3_PREFIX") or ""
        self.encryption = encryption_of(config)
        session, where = boto3.session.Session(), {"endpoint_url": config.get("EVIDENCE_S3_ENDPOINT_URL") or None,
                                                   "region_name": config.get("EVIDENCE_S3_REGION") or None}
        settings = client_config(config)
        self.client = session.client("s3", config=settings, **where)
        self._probe = session.client("s3", config=settings.merge(Config(
            connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 1})), **where)

    def ready(self) -> bool:
        """The bucket answers (HEAD, one attempt, a few seconds at most: a probe must not hang on retries)."""
        try:
            self._probe.head_bucket(Bucket=self.bucket)
            return True
        except (ClientError, BotoCoreError) as err:
            log.warning("evidence store: the bucket did not answer: %s", err)
            return False

    def key(self, sha256: str) -> str:
        return self.prefix + check_digest(sha256)

    def put(self, sha256: str, content: bytes) -> None:
        if self.exists(sha256):
            return                      # the same content, already stored (for another case, say)
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key(sha256), Body=content, IfNoneMatch="*",
                                   ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum, **self.encryption)
        except ClientError as err:
            code = code_of(err)
            if code in IN_FLIGHT and self.exists(sha256):
                return                  # the other upload finished meanwhile
            if code not in ALREADY_THERE:
                raise unavailable("put", sha256, err) from err
        except BotoCoreError as err:
            raise unavailable("put", sha256, err) from err

    def get(self, sha256: str) -> bytes:
        try:
            content = self.client.get_object(Bucket=self.bucket, Key=self.key(sha256))["Body"].read()
        except ClientError as err:
            if code_of(err) in NOT_FOUND:
                raise FileNotFoundError(f"no object {self.key(sha256)} in {self.bucket}") from None
            raise unavailable("get", sha256, err) from err
        except BotoCoreError as err:
            raise unavailable("get", sha256, err) from err
        if hashlib.sha256(content).hexdigest() != sha256:
            raise ContentMismatch(f"the object {self.key(sha256)} does not match its SHA-256")
        return content

    def exists(self, sha256: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except ClientError as err:
            if code_of(err) in NOT_FOUND:
                return False
            raise unavailable("head", sha256, err) from err
        except BotoCoreError as err:
            raise unavailable("head", sha256, err) from err
        return True

    def contents(self, stored_before=None):
        """The objects under the prefix whose names are hashes (ListBucket, a page of 1,000 at a time)."""
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", []):
                    sha = item["Key"][len(self.prefix):]
                    if is_digest(sha) and (stored_before is None or item["LastModified"] < stored_before):
                        yield Stored(sha, item["Size"], item["LastModified"])
        except (ClientError, BotoCoreError) as err:
            raise unavailable("list", self.prefix or "the bucket", err) from err


def encryption_of(config) -> dict:
    """put_object's server-side encryption arguments: none (the bucket's default), AES256 (keys managed by
    the store) or aws:kms with an optional key id."""
    sse = config.get("EVIDENCE_S3_SSE") or ""
    if not sse:
        return {}
    if sse not in ENCRYPTIONS:
        raise ValueError(f"EVIDENCE_S3_SSE must be one of {sorted(ENCRYPTIONS)} or empty, not {sse!r}")
    key_id = config.get("EVIDENCE_S3_SSE_KMS_KEY_ID")
    return {"ServerSideEncryption": sse, **({"SSEKMSKeyId": key_id} if key_id and sse != "AES256" else {})}


def code_of(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def unavailable(operation, sha256, err) -> StoreUnavailable:
    """The error to raise, the cause logged for the operator (botocore's messages carry no credentials)."""
    log.error("evidence store: %s of %s failed: %s: %s", operation, sha256, type(err).__name__, err)
    return StoreUnavailable()
