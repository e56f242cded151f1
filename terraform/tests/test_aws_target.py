"""Post-deploy tests of the AWS target deployed by the Terraform module (terraform/): the real resources, read through
the AWS API (boto3), match the plan.

The checks are the Pulumi AWS program's own (programs/aws/tests/test_aws_target.py): both make the same resources and
export the same outputs, so one set of tests serves both tools. The engine runs them after every successful `up` it is
asked to test (docs/TESTING.md, "Post-deploy tests").
"""

from programs.aws.tests.test_aws_target import *  # noqa: F401,F403 - pytest collects the imported tests
