"""An example serverless app on kvstore: a teams/members API as an AWS Lambda handler."""
