"""Puts the app's modules (dbt-app/) and the test support module on sys.path; the shared AWS fixture."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (HERE.parent, HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


import boto3  # noqa: E402
import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402
from support import REGION, create_aws  # noqa: E402


@pytest.fixture(scope="module")
def aws():
    """moto's AWS for one test module, with the runs table and the Snowflake secret."""
    with mock_aws():
        session = boto3.session.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        create_aws(session)
        yield session
