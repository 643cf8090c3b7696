"""A Lambda cold start on the dynamo backend imports botocore, not boto3's resource layer."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from kvstore.testing import unique_kind
from kvstore.testing._servers.dynamodb_local import DynamoDBLocal
from tests.backends.dynamo.conftest import FAKE_CREDENTIALS, REGION

SCRIPT = """
import json, sys
import kvstore
store = kvstore.create_store(sys.argv[1], backend="dynamo")
store.ensure()
store.put({"id": "a", "n": 1})
found = store.find({"id": "a"})
before_native = "boto3" in sys.modules
table = store.native().table
print(json.dumps({"found": found, "boto3": before_native, "native": table.name,
                  "native_boto3": "boto3" in sys.modules}))
"""


def test_a_store_s_calls_import_no_boto3_until_native(dynamodb_local: DynamoDBLocal) -> None:
    kind = unique_kind("cold")
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_local.endpoint,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["aws_secret_access_key"],
        "DYNAMO_TABLE_PREFIX": "",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, kind], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["found"] == {"id": "a", "n": 1}
    assert result["boto3"] is False
    assert result["native"] == kind
    assert result["native_boto3"] is True
