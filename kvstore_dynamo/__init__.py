"""kvstore's ``dynamo`` backend: each kind a DynamoDB table, through boto3."""
