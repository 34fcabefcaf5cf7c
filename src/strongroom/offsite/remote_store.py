"""Talking to the object storage that holds offsite copies: list, has, put, get, delete.

``ObjectStore`` is the whole interface ``remote`` needs, with keys relative to the
configured prefix; ``S3Store`` speaks it to S3 or any S3-compatible service through
boto3 (endpoint, region and bucket from ``config.RemoteSettings``; credentials as boto3
finds them: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, a role).
A listing is one paginated request per thousand keys, never one request per object.
An object below boto3's multipart threshold goes up in one request; a larger one in
parts, several at once (boto3's transfer manager), and one such object at a time: with
the several transfers of a push (``transfers``) under way, memory stays bounded.

Every failure of the service becomes one typed error with one line of text: a bucket
that is not configured is ``BadInput``, missing credentials too; a service that cannot
be reached, or that refuses a request, is ``RemoteFailed``. Retries are few and
timeouts short, so a storage that is down is reported in seconds, not minutes.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import BinaryIO, Protocol

from strongroom.config import ENV_S3_BUCKET, RemoteSettings
from strongroom.errors import BadInput, RemoteFailed

MULTIPART = 8 << 20  # boto3's threshold: larger objects go up in parts, one such object at a time


class ObjectStore(Protocol):
    """Keys are relative to the store's prefix."""

    def describe(self) -> str: ...
    def list(self, prefix: str) -> dict[str, int]: ...
    def stamps(self, prefix: str) -> dict[str, float]: ...
    def has(self, key: str) -> bool: ...
    def put(self, key: str, body: BinaryIO) -> None: ...
    def get(self, key: str, out: BinaryIO) -> bool: ...
    def delete(self, keys: list[str]) -> None: ...


class S3Store:
    """An ``ObjectStore`` on an S3 bucket (boto3)."""

    def __init__(self, settings: RemoteSettings):
        if not settings.bucket:
            raise BadInput(f"no remote storage is configured: set {ENV_S3_BUCKET} "
                           "(and STRONGROOM_S3_ENDPOINT for a service other than AWS)")
        import botocore.session  # only commands that use the remote pay for importing botocore
        from botocore.config import Config as BotoConfig

        self.bucket, self.prefix, self.endpoint = settings.bucket, settings.prefix, settings.endpoint
        self._large = threading.Lock()
        boto = BotoConfig(connect_timeout=5, read_timeout=60, retries={"max_attempts": 2, "mode": "standard"},
                          max_pool_connections=32)  # several transfers, each maybe in parts
        with self._talking():
            session = botocore.session.get_session()
            # botocore reads each listed object's time with dateutil, which cost more than
            # the listing itself; these times are ISO 8601 (headers' times fall back to it).
            session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
            self.client = session.create_client("s3", endpoint_url=settings.endpoint, region_name=settings.region,
                                                config=boto)

    def describe(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    def list(self, prefix: str) -> dict[str, int]:
        """Every key below ``prefix`` with its size."""
        return {key: item["Size"] for key, item in self._items(prefix)}

    def stamps(self, prefix: str) -> dict[str, float]:
        """Every key below ``prefix`` with the store's time of its last write (POSIX seconds)."""
        return {key: item["LastModified"].timestamp() for key, item in self._items(prefix)}

    def _items(self, prefix: str) -> list[tuple[str, dict]]:
        with self._talking():
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix)
            return [(item["Key"][len(self.prefix):], item) for page in pages for item in page.get("Contents", [])]

    def has(self, key: str) -> bool:
        with self._talking():
            try:
                self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
            except self.client.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise
        return True

    def put(self, key: str, body: BinaryIO) -> None:
        """Store ``body`` (read from its position) under ``key``; safe from several threads."""
        start = body.tell()
        size = body.seek(0, io.SEEK_END) - start
        body.seek(start)
        with self._talking():
            if size < MULTIPART:  # one request, without boto3's transfer machinery
                self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=body)
                return
            # boto3's transfer manager, imported for objects in parts only
            from boto3.exceptions import Boto3Error
            from boto3.s3.inject import upload_fileobj

            with self._large:  # it sends the parts several at once already
                try:
                    upload_fileobj(self.client, body, self.bucket, self.prefix + key)
                except Boto3Error as exc:
                    raise RemoteFailed(f"the remote storage {self.describe()} failed: {_one_line(exc)}") from None

    def get(self, key: str, out: BinaryIO) -> bool:
        """Write the object's content to ``out``; False when there is no such object."""
        with self._talking():
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            except self.client.exceptions.NoSuchKey:
                return False
            # One write at a time: a spooled temporary file's ``writelines`` holds it all in memory.
            for chunk in response["Body"].iter_chunks(1 << 20):  # noqa: FURB122
                out.write(chunk)
        return True

    def delete(self, keys: list[str]) -> None:
        with self._talking():
            for start in range(0, len(keys), 1000):  # the service's limit per request
                batch = [{"Key": self.prefix + key} for key in keys[start:start + 1000]]
                answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
                if answer.get("Errors"):
                    error = answer["Errors"][0]
                    raise RemoteFailed(f"{self.describe()} refused to delete {error.get('Key')}: "
                                       f"{error.get('Code')} {error.get('Message', '')}".strip())

    @contextmanager
    def _talking(self) -> Iterator[None]:
        """Turn boto3's failures into one-line typed errors."""
        from botocore import exceptions as boto

        try:
            yield
        except boto.NoCredentialsError:
            raise BadInput("no credentials for the remote storage: set AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE") from None
        except (boto.EndpointConnectionError, boto.ConnectTimeoutError, boto.ReadTimeoutError,
                boto.ConnectionClosedError) as exc:
            raise RemoteFailed(f"cannot reach the remote storage {self.describe()}: "
                               f"{_one_line(exc)}") from None
        except boto.ClientError as exc:
            error = exc.response.get("Error", {})
            raise RemoteFailed(f"the remote storage {self.describe()} refused: {error.get('Code', '?')} "
                               f"{_one_line(error.get('Message', ''))}".rstrip()) from None
        except boto.BotoCoreError as exc:
            raise RemoteFailed(f"the remote storage {self.describe()} failed: {_one_line(exc)}") from None


def _timestamp(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        from botocore.utils import parse_timestamp

        return parse_timestamp(text)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())
