"""The only package that speaks DynamoDB: CallStore's operations (calls.py); item shapes and keys
stay inside."""
