"""An S3 bucket (AWS, or an S3-compatible store: MinIO, R2) as a mirror, through boto3.

boto3 is the optional extra ``easy-oww[s3]``, imported only when an ``s3://`` mirror is used
(`S3Bucket` imports it on first use). Credentials and the endpoint come from boto3's standard
chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE and
~/.aws/credentials + ~/.aws/config, and AWS_ENDPOINT_URL (or a profile's endpoint_url) for
an S3-compatible store. Nothing here reads, logs or writes a credential: every error is worded
from the store's error code and the bucket's name, never from the library's message text.

A download (`S3Bucket.fetch_verified`) passes the checks a download from the origin does:
the per-file lock, the size, the known hash computed while the bytes arrive, the format
check, fsync, rename. It is resumable: the bytes go to ``<final>.s3.part`` beside a record
``<final>.s3.part.json`` (the object's ``s3://`` name, ETag and size); a later attempt asks for
the rest with ``Range`` and ``If-Match`` on that ETag, so bytes of two versions of an object
are never joined (a changed object starts again from zero).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from filelock import FileLock, Timeout

from easy_oww.atomic import fsync_dir
from easy_oww.errors import (
    BadInputError,
    DownloadError,
    HashMismatchError,
    IntegrityError,
    LockTimeoutError,
    NetworkError,
    SizeMismatchError,
)
from easy_oww.hashes import new_hasher
from easy_oww.progress import NullProgress
from easy_oww.transfer.fetch import FetchRequest, FetchResult, FormatCheckError, lock_path
from easy_oww.transfer.retry import Cancelled

CHUNK = 1024 * 1024
HASH_METADATA = "easy-oww-hash"  # x-amz-meta-easy-oww-hash: "sha256:<hex>", set by a push
EXTRA_HINT = "pip install 'easy-oww[s3]'"
STREAM_ATTEMPTS = 3  # a dropped connection mid-object resumes from the part this many times


class S3ConfigError(BadInputError):
    """The S3 extra is missing, or no credentials are set up (exit 2, before any work)."""


class S3StoreError(DownloadError):
    """The store refused the whole bucket (missing, access denied, credentials refused):
    no object of it will come, so a download stops asking this mirror."""


class S3Unreachable(NetworkError):
    """The endpoint did not answer."""


@dataclass(frozen=True)
class S3Location:
    """``s3://bucket/prefix``: a mirror's root; its files are ``prefix/datasets/<path>``."""

    bucket: str
    prefix: str  # no leading or trailing slash; may be empty

    @classmethod
    def parse(cls, spec: str) -> S3Location:
        parts = urlsplit(spec.strip())
        if parts.scheme.lower() != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise BadInputError(f"{spec!r}: expected s3://BUCKET[/PREFIX]")
        return cls(bucket=parts.netloc, prefix=parts.path.strip("/"))

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def key(self, rel: str) -> str:
        """The object key of a path under the mirror's root (``datasets/<p>``, ``index.json``)."""
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def dataset_key(self, rel: str) -> str:
        return self.key(f"datasets/{rel}")


def s3_part_path(dest: Path) -> Path:
    """Where a download of `dest` from a bucket is written until it checks out."""
    return Path(str(dest) + ".s3.part")


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    etag: str
    hash: str | None  # the push's x-amz-meta-easy-oww-hash: the store's word, not a proof


class S3Bucket:
    """One bucket and prefix, through one boto3 client (thread-safe: several files at once)."""

    def __init__(self, location: S3Location) -> None:
        self.location = location
        self._client: Any = None
        self._session: Any = None
        self._lock = threading.Lock()

    # -- the client and its errors -----------------------------------------------------------
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        try:  # boto3 loads ~0.3 s of modules, and is an extra: only for an s3:// mirror
            import boto3
            import botocore.config
            import botocore.exceptions
        except ImportError:
            raise S3ConfigError(f"{self.location.url}: s3:// mirrors need boto3; install it "
                                f"with: {EXTRA_HINT}") from None

        config = botocore.config.Config(
            connect_timeout=5, read_timeout=60, retries={"mode": "standard", "max_attempts": 3},
            # S3-compatible stores (MinIO, R2, ...) do not all take the CRC32 trailers boto3
            # adds by default since 1.36; the catalog's hash is checked end to end anyway.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required")
        try:
            self._session = boto3.session.Session()
            return self._session.client("s3", config=config)
        except botocore.exceptions.BotoCoreError as exc:
            raise self.error(exc, "set up") from None

    def endpoint(self) -> str:
        """The endpoint's address without any user:password part (never a credential)."""
        parts = urlsplit(str(self.client().meta.endpoint_url))
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}"

    def error(self, exc: Exception, doing: str) -> Exception:
        """A library error as one of ours, worded from its code alone (its own text may
        quote a request; ours never holds a credential)."""
        # Only ever called on an exception botocore raised, so it is imported already.
        import botocore.exceptions as bx

        where = self.location.url
        if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
            return S3ConfigError(f"{where}: no AWS credentials found; set AWS_ACCESS_KEY_ID "
                                 "and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (a profile of "
                                 "~/.aws/credentials)")
        if isinstance(exc, bx.ProfileNotFound):
            profile = getattr(exc, "kwargs", {}).get("profile", "?")
            return S3ConfigError(f"{where}: AWS_PROFILE names the profile {profile!r}, which "
                                 "~/.aws/credentials and ~/.aws/config do not have")
        if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError)):
            return S3Unreachable(f"{where}: cannot reach the S3 endpoint {self._endpoint()}; "
                                 "check the network and AWS_ENDPOINT_URL")
        if isinstance(exc, bx.ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NoSuchBucket":
                return S3StoreError(f"{where}: the bucket {self.location.bucket!r} does not "
                                    f"exist at {self._endpoint()}; create it, or check the "
                                    "name and AWS_ENDPOINT_URL", status=404)
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                        "InvalidToken", "TokenRefreshRequired"):
                return S3StoreError(f"{where}: the store refused the credentials ({code}); "
                                    "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or "
                                    "AWS_PROFILE", status=status)
            if code in ("AccessDenied", "AllAccessDisabled", "403"):
                return S3StoreError(f"{where}: access denied ({doing}); the credentials lack "
                                    "permission for this bucket or prefix", status=403)
            if code in ("NoSuchKey", "404", "NotFound"):
                return DownloadError(f"{where}: no object for {doing}", status=404)
            return DownloadError(f"{where}: {doing} failed: the store answered {code or status}",
                                 status=status)
        if isinstance(exc, bx.BotoCoreError):
            return DownloadError(f"{where}: {doing} failed ({type(exc).__name__})")
        if isinstance(exc, OSError):  # the local file of an upload unreadable, say
            return DownloadError(f"{where}: {doing}: {exc.strerror or type(exc).__name__}")
        return exc

    def _endpoint(self) -> str:
        try:
            return self.endpoint()
        except Exception:  # (only wording a message: the client may be what failed)
            return "the configured endpoint"

    def _call(self, doing: str, method: str, **kwargs: Any) -> Any:
        client = self.client()
        try:
            return getattr(client, method)(**kwargs)
        except Exception as exc:
            raise self.error(exc, doing) from None

    # -- reading -----------------------------------------------------------------------------
    def check_credentials(self) -> None:
        """S3ConfigError when the standard chain finds no credentials (no request is sent)."""
        self.client()
        try:
            found = self._session.get_credentials()
        except Exception as exc:
            raise self.error(exc, "set up") from None
        if found is None:
            raise self.error(_no_credentials(), "set up")

    def check_bucket(self) -> None:
        """The bucket exists and these credentials may list it (one small request)."""
        self._call(f"listing {self.location.url}", "list_objects_v2",
                   Bucket=self.location.bucket, Prefix=self.location.key(""), MaxKeys=1)

    def head(self, key: str) -> ObjectInfo | None:
        """The object's size, ETag and pushed hash; None when there is none."""
        try:
            found = self._call(key, "head_object", Bucket=self.location.bucket, Key=key)
        except DownloadError as exc:
            if exc.status == 404 and not isinstance(exc, S3StoreError):
                return None
            raise
        return ObjectInfo(size=int(found["ContentLength"]), etag=str(found.get("ETag", "")),
                          hash=(found.get("Metadata") or {}).get(HASH_METADATA))

    def get_bytes(self, key: str) -> bytes | None:
        try:
            found = self._call(key, "get_object", Bucket=self.location.bucket, Key=key)
        except DownloadError as exc:
            if exc.status == 404 and not isinstance(exc, S3StoreError):
                return None
            raise
        return bytes(found["Body"].read())

    # -- writing -----------------------------------------------------------------------------
    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._call(f"uploading {key}", "put_object", Bucket=self.location.bucket, Key=key,
                   Body=data, ContentType=content_type)

    def upload(self, path: Path, key: str, known_hash: str,
               advance: Callable[[int], None]) -> None:
        """`path` to `key` with its hash in the metadata; boto3's transfer manager splits a
        large file into a multipart upload (8 MiB parts, several at once)."""
        client = self.client()
        try:
            client.upload_file(str(path), self.location.bucket, key,
                               ExtraArgs={"Metadata": {HASH_METADATA: known_hash}},
                               Callback=advance)
        except Exception as exc:
            # upload_file wraps a refused part in S3UploadFailedError around the ClientError.
            cause = exc.__cause__ or exc.__context__
            import botocore.exceptions as bx  # (imported already: the client is made)

            if not isinstance(exc, (bx.ClientError, bx.BotoCoreError)) and \
                    isinstance(cause, (bx.ClientError, bx.BotoCoreError)):
                exc = cause
            raise self.error(exc, f"uploading {key}") from None

    # -- a verified download -----------------------------------------------------------------
    def fetch_verified(self, request: FetchRequest, key: str, *, lock_dir: Path | None = None,
                       lock_timeout: float = 3600.0, cancel: threading.Event | None = None,
                       progress: NullProgress | None = None) -> FetchResult:
        """The object at `key` to `request.dest` when its bytes have `request.hash`
        (required: a bucket's word is no proof) and `request.size` (when known)."""
        if request.hash is None:
            raise DownloadError(f"s3://{self.location.bucket}/{key}: no known hash to check "
                                "a download from a bucket against")
        progress = progress or NullProgress()
        cancel = cancel or threading.Event()
        dest = request.dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        lock_file = lock_path(lock_dir or dest.parent / ".locks", dest)
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_file))
        try:
            lock.acquire(timeout=lock_timeout)
        except Timeout:
            raise LockTimeoutError(f"{dest} is still being written by another process after "
                                   f"{lock_timeout:.0f} s; try again when it has "
                                   "finished") from None
        try:
            name = f"s3://{self.location.bucket}/{key}"
            if request.done_by_other is not None and request.done_by_other():
                return FetchResult(path=dest, size=dest.stat().st_size, hash=str(request.hash),
                                   url=name, validator=None, transferred=0,
                                   resumed_from=dest.stat().st_size, skipped=True)
            result = _Download(self, request, key, name, cancel, progress).run()
            if request.on_complete is not None:
                request.on_complete(result)
            return result
        finally:
            lock.release()


def _no_credentials() -> Exception:
    import botocore.exceptions  # (imported already: the client is made)

    return botocore.exceptions.NoCredentialsError()


class _Download:
    """One object into ``<dest>.s3.part``, resumed from what an earlier attempt left."""

    def __init__(self, bucket: S3Bucket, request: FetchRequest, key: str, name: str,
                 cancel: threading.Event, progress: NullProgress) -> None:
        assert request.hash is not None
        self.bucket, self.request, self.key, self.name = bucket, request, key, name
        self.known = request.hash
        self.cancel, self.progress = cancel, progress
        self.part = s3_part_path(request.dest)
        self.record = Path(str(self.part) + ".json")

    def _load_record(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("url") != self.name:
            return None
        return data

    def _save_record(self, etag: str, size: int) -> None:
        # "url" and "written" make it a resume record `easy-oww clean` recognises.
        tmp = Path(str(self.record) + ".tmp")
        tmp.write_text(json.dumps({"url": self.name, "etag": etag, "size": size,
                                   "written": []}), encoding="utf-8")
        os.replace(tmp, self.record)

    def _discard(self) -> None:
        self.part.unlink(missing_ok=True)
        self.record.unlink(missing_ok=True)

    def _rehash(self, digest: Any, upto: int) -> None:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        left = upto
        with open(self.part, "rb", buffering=0) as reader:
            while left > 0 and (n := reader.readinto(view[:min(CHUNK, left)])):
                digest.update(view[:n])
                left -= n

    def run(self) -> FetchResult:
        import botocore.exceptions as bx  # (imported already: the client is made)

        # A dropped connection mid-object: the part is kept and the rest asked for.
        dropped = (bx.ReadTimeoutError, bx.ResponseStreamingError, bx.IncompleteReadError,
                   bx.ConnectionClosedError)
        record = self._load_record()
        etag: str | None = None
        offset = 0
        if record is not None and self.part.is_file() and (
                self.request.size is None or record.get("size") == self.request.size):
            etag = str(record.get("etag") or "") or None
            offset = self.part.stat().st_size if etag else 0
        if offset == 0:
            self._discard()
        elif record is not None and offset >= int(record.get("size") or 0):
            self._discard()  # (complete or longer, yet never renamed: checked anew)
            offset, etag = 0, None
        resumed_from = offset
        total: int | None = self.request.size
        task = self.progress.task(self.request.label or self.request.dest.name, total, offset)
        ok = False
        transferred = 0
        try:
            for attempt in range(STREAM_ATTEMPTS):
                digest = new_hasher(self.known.algorithm, total)
                if offset:
                    self._rehash(digest, offset)
                try:
                    total, etag, got = self._stream(offset, etag, digest, task)
                    transferred += got
                    break
                except _Changed:  # the object was replaced since the part began
                    self._discard()
                    offset, etag = 0, None
                    task.reset(0)
                except dropped:
                    got_so_far = self.part.stat().st_size if self.part.exists() else 0
                    transferred += max(0, got_so_far - offset)
                    offset = got_so_far
                    if attempt == STREAM_ATTEMPTS - 1:
                        raise DownloadError(f"{self.name}: the connection dropped "
                                            f"{STREAM_ATTEMPTS} times; the part is kept for "
                                            "the next run") from None
            else:  # (the object changed under every attempt)
                raise DownloadError(f"{self.name}: the object kept changing while it was "
                                    "read") from None
            assert total is not None
            result = self._finish(digest, total, transferred, resumed_from)
            ok = True
            return result
        except IntegrityError:
            self._discard()  # nothing that failed a check is kept
            raise
        finally:
            task.finish(ok)

    def _stream(self, offset: int, etag: str | None, digest: Any, task: Any
                ) -> tuple[int, str, int]:
        """The bytes from `offset` on appended to the part; (object size, ETag, bytes got)."""
        args: dict[str, Any] = {"Bucket": self.bucket.location.bucket, "Key": self.key}
        if offset:
            args["Range"] = f"bytes={offset}-"
            args["IfMatch"] = etag
        try:
            found = self.bucket.client().get_object(**args)
        except Exception as exc:
            code = _client_code(exc)
            if offset and code in ("PreconditionFailed", "InvalidRange"):
                raise _Changed() from None
            raise self.bucket.error(exc, self.key) from None
        body = found["Body"]
        size = _object_size(found, offset)
        if self.request.size is not None and size != self.request.size:
            body.close()
            raise SizeMismatchError(f"{self.name} has {size:,} bytes, the catalog says "
                                    f"{self.request.size:,}")
        new_etag = str(found.get("ETag", ""))
        if offset == 0:
            self._save_record(new_etag, size)
        got = 0
        with open(self.part, "ab" if offset else "wb", buffering=0) as writer:
            try:
                for chunk in body.iter_chunks(CHUNK):
                    if self.cancel.is_set():
                        raise Cancelled()
                    digest.update(chunk)
                    view = memoryview(chunk)
                    written = 0
                    while written < len(chunk):
                        written += writer.write(view[written:])
                    got += len(chunk)
                    task.advance(len(chunk))
            finally:
                body.close()
                os.fsync(writer.fileno())
        return size, new_etag, got

    def _finish(self, digest: Any, size: int, transferred: int, resumed_from: int
                ) -> FetchResult:
        dest = self.request.dest
        have = self.part.stat().st_size
        if have != size:
            raise SizeMismatchError(f"{self.name}: {have:,} bytes arrived, the object has "
                                    f"{size:,}; deleted the copy")
        got = f"{self.known.algorithm}:{digest.hexdigest()}"
        if got != str(self.known):
            raise HashMismatchError(f"{self.name}: {self.known.algorithm} mismatch: expected "
                                    f"{self.known.hexdigest}, got {digest.hexdigest()}; "
                                    "deleted the copy")
        if self.request.check is not None:
            try:
                self.request.check(self.part)
            except IntegrityError as exc:
                raise FormatCheckError(f"{dest.name}: {exc}; deleted the copy",
                                       transferred=transferred) from None
        os.replace(self.part, dest)
        self.record.unlink(missing_ok=True)
        fsync_dir(dest.parent)
        return FetchResult(path=dest, size=size, hash=got, url=self.name, validator=None,
                           transferred=transferred, resumed_from=resumed_from)


class _Changed(Exception):
    """The object is not the one the part began with (If-Match failed)."""


def _client_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _object_size(found: dict[str, Any], offset: int) -> int:
    """The whole object's size: from Content-Range for a ranged answer."""
    content_range = str(found.get("ContentRange") or "")
    if offset and "/" in content_range:
        return int(content_range.rsplit("/", 1)[1])
    return int(found["ContentLength"]) + offset
