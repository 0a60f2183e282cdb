//! Redaction corpus: secret shapes that must be redacted, each inside realistic text (a Bash command, tool
//! output, a prompt), and look-alikes that must come through unchanged. Every case is checked on the plain
//! string (`redact_str`) and inside a hook payload (`redact_json`); the JSON-key cases only through
//! `redact_json`. Run with `--nocapture` for the summary table (docs/RELIABILITY.md records its counts).
//!
//! Every credential below is made up: random-looking filler in the shape of the real thing.

use hivewatch::model::redact::{REDACTED, redact_json, redact_str};
use serde_json::{Value, json};

/// A text that holds a secret: `secret` is the part that must not survive.
struct Secret {
    shape: &'static str,
    text: &'static str,
    secret: &'static str,
}

const SECRETS: &[Secret] = &[
    Secret {
        shape: "Anthropic key in a prompt",
        text: "my key is sk-ant-api03-q8Zr7Vx2Lm4Np6Tb9Kc1Hd3Jf5Gs0Wy-AbCdEf_gh12 please use it",
        secret: "q8Zr7Vx2Lm4Np6Tb9Kc1Hd3Jf5Gs0Wy",
    },
    Secret {
        shape: "Anthropic key in a curl header",
        text: "curl https://api.anthropic.com/v1/messages -H \"x-api-key: sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe\"",
        secret: "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe",
    },
    Secret {
        shape: "Anthropic admin key",
        text: "export ADMIN=sk-ant-admin01-Qw3Er4Ty5Ui6Op7As8Df9Gh0Jk1Lz2",
        secret: "Qw3Er4Ty5Ui6Op7As8Df9Gh0Jk1Lz2",
    },
    Secret {
        shape: "OpenAI legacy key in Python",
        text: "client = OpenAI(key=\"sk-T3BlbkFJa1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8\")",
        secret: "T3BlbkFJa1b2c3d4e5f6g7h8i9j0",
    },
    Secret {
        shape: "OpenAI project key in tool output",
        text: "OPENAI_KEY_USED: sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78\nrequest ok",
        secret: "Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56",
    },
    Secret {
        shape: "OpenAI service-account key",
        text: "using sk-svcacct-Zz11Yy22Xx33Ww44Vv55Uu66Tt77 for the batch job",
        secret: "Zz11Yy22Xx33Ww44Vv55Uu66Tt77",
    },
    Secret {
        shape: "AWS access key id in aws output",
        text: "      Name                    Value\n access_key     ****************  AKIAQ3EGZ7TXKN4PLM2B shared-credentials-file",
        secret: "AKIAQ3EGZ7TXKN4PLM2B",
    },
    Secret {
        shape: "AWS temporary key id",
        text: "export AWS_ACCESS_KEY_ID_TMP=x; echo ASIAZ7Q3TXKN4PLM2BQ8 >> creds.txt",
        secret: "ASIAZ7Q3TXKN4PLM2BQ8",
    },
    Secret {
        shape: "aws_secret_access_key in ~/.aws/credentials",
        text: "[default]\naws_access_key_id = AKIAQ3EGZ7TXKN4PLM2B\naws_secret_access_key = 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\n",
        secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Zr7Vx2L",
    },
    Secret {
        shape: "AWS_SECRET_ACCESS_KEY export",
        text: "export AWS_SECRET_ACCESS_KEY=\"Lm4Np6Tb9Kc1Hd3Jf5Gs0WyQ8Zr7Vx2Lm4Np6Tb\" && aws s3 ls",
        secret: "Lm4Np6Tb9Kc1Hd3Jf5Gs0WyQ8Zr7Vx2Lm4Np6Tb",
    },
    Secret {
        shape: "GitHub ghp_ in a remote URL",
        text: "git remote add origin https://ghp_R4nd0mT0k3nV4lu3F0rT3st1ngXyZ123456@github.com/acme/app.git",
        secret: "ghp_R4nd0mT0k3nV4lu3F0rT3st1ngXyZ123456",
    },
    Secret {
        shape: "GitHub gho_ OAuth token",
        text: "gh auth status\n  Token: gho_Qq1Ww2Ee3Rr4Tt5Yy6Uu7Ii8Oo9Pp0AaSsDd",
        secret: "gho_Qq1Ww2Ee3Rr4Tt5Yy6Uu7Ii8Oo9Pp0AaSsDd",
    },
    Secret {
        shape: "GitHub fine-grained github_pat_",
        text: "Here is the PAT: github_pat_11ABCDEFG0aBcDeFgHiJkLmN_OpQrStUvWxYz0123456789AbCdEfGhIj",
        secret: "11ABCDEFG0aBcDeFgHiJkLmN",
    },
    Secret {
        shape: "GitHub app ghs_ token",
        text: "installation token ghs_Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0PpOoNn expires in 1h",
        secret: "ghs_Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0PpOoNn",
    },
    Secret {
        shape: "Slack bot token xoxb-",
        text: "curl -d 'token=xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUv' https://slack.com/api/chat.postMessage",
        secret: "AbCdEfGhIjKlMnOpQrStUv",
    },
    Secret {
        shape: "Slack user token xoxp-",
        text: "slack user token is xoxp-2222222222-3333333333-4444444444-abcdef0123456789abcdef0123456789",
        secret: "abcdef0123456789abcdef0123456789",
    },
    Secret {
        shape: "Slack webhook URL",
        text: "curl -X POST -d '{\"text\":\"deployed\"}' https://hooks.slack.com/services/T01ABCDEF/B02GHIJKL/q8Zr7Vx2Lm4Np6Tb9Kc1Hd3J",
        secret: "q8Zr7Vx2Lm4Np6Tb9Kc1Hd3J",
    },
    Secret {
        shape: "Google API key AIza",
        text: "const maps = new Loader({ key: 'AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY' });",
        secret: "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
    },
    Secret {
        shape: "Google OAuth client secret GOCSPX-",
        text: "client secret shown once: 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",
        secret: "q8Zr7Vx2Lm4Np6Tb9Kc1Hd3Jf5Gs",
    },
    Secret {
        shape: "Google OAuth access token ya29.",
        text: "gcloud auth print-access-token\nya29.a0AfB_byQ8Zr7Vx2Lm4Np6Tb9Kc1Hd3Jf5Gs0Wy",
        secret: "a0AfB_byQ8Zr7Vx2Lm4Np6Tb9Kc1Hd3Jf5Gs0Wy",
    },
    Secret {
        shape: "Stripe secret key sk_live_",
        text: "stripe.api_key_live = 'sk_live_51HqLyjWDarjtT1zdp7dcXzA'; stripe.Charge.create()",
        secret: "51HqLyjWDarjtT1zdp7dcXzA",
    },
    Secret {
        shape: "Stripe restricted key rk_live_",
        text: "Use rk_live_51HqLyjWDarjtT1zdq8Zr7Vx2 for read-only reporting",
        secret: "51HqLyjWDarjtT1zdq8Zr7Vx2",
    },
    Secret {
        shape: "Stripe test secret key sk_test_",
        text: "STRIPE=sk_test_4eC39HqLyjWDarjtT1zdp7dc node server.js",
        secret: "4eC39HqLyjWDarjtT1zdp7dc",
    },
    Secret {
        shape: "GitLab personal token glpat-",
        text: "git clone https://oauth2:glpat-xY9zW8vU7tS6rQ5pO4nM@gitlab.com/acme/app.git",
        secret: "xY9zW8vU7tS6rQ5pO4nM",
    },
    Secret {
        shape: "GitLab token in prose",
        text: "the CI token is glpat-Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op, rotate it monthly",
        secret: "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op",
    },
    Secret {
        shape: "npm token in .npmrc",
        text: "cat ~/.npmrc\n//registry.npmjs.org/:_authToken=npm_q8Zr7Vx2Lm4Np6Tb9Kc1Hd3Jf5Gs0WyAbCd",
        secret: "q8Zr7Vx2Lm4Np6Tb9Kc1Hd3Jf5Gs0WyAbCd",
    },
    Secret {
        shape: "npm token in prose",
        text: "publish with npm_Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0PpOoNn then revoke",
        secret: "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0PpOoNn",
    },
    Secret {
        shape: "Bearer token in curl",
        text: "curl -H \"Authorization: Bearer 8f14e45fceea167a5a36dedd4bea2543\" https://api.example.com/v1/me",
        secret: "8f14e45fceea167a5a36dedd4bea2543",
    },
    Secret {
        shape: "Bearer token in an HTTP dump",
        text: "> GET /v2/items HTTP/1.1\n> Host: api.example.com\n> authorization: bearer a1b2c3d4e5f6.g7h8i9j0k1l2-m3n4\n",
        secret: "a1b2c3d4e5f6.g7h8i9j0k1l2-m3n4",
    },
    Secret {
        shape: "Basic auth header",
        text: "curl -H 'Authorization: Basic YWRtaW46aHVudGVyMg==' http://localhost:9200/_cat/indices",
        secret: "YWRtaW46aHVudGVyMg",
    },
    Secret {
        shape: "JWT in prose",
        text: "decode this: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        secret: "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    },
    Secret {
        shape: "JWT in a cookie",
        text: "Set-Cookie: session=eyJhbGciOiJSUzI1NiJ9.eyJ1c2VyIjoiYWxpY2UiLCJleHAiOjE3MDB9.dGhpc2lzYXNpZ25hdHVyZQ; HttpOnly",
        secret: "eyJ1c2VyIjoiYWxpY2UiLCJleHAiOjE3MDB9",
    },
    Secret {
        shape: "PEM RSA private key",
        text: "cat id_rsa\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAq8Zr7Vx2Lm4Np6Tb9Kc1Hd3Jf5Gs0Wy\nAbCdEfGh\n-----END RSA PRIVATE KEY-----\ndone",
        secret: "MIIEowIBAAKCAQEAq8Zr7Vx2Lm4Np6Tb9Kc1Hd3Jf5Gs0Wy",
    },
    Secret {
        shape: "PEM EC private key",
        text: "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBq8Zr7Vx2Lm4Np6Tb9Kc1Hd3Jf5Gs0WyoAoGCCqGSM49\n-----END EC PRIVATE KEY-----",
        secret: "MHcCAQEEIBq8Zr7Vx2Lm4Np6Tb9Kc1Hd3Jf5Gs0WyoAoGCCqGSM49",
    },
    Secret {
        shape: "PEM OPENSSH private key",
        text: "$ cat ~/.ssh/id_ed25519\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n",
        secret: "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
    },
    Secret {
        shape: "PEM PKCS#8 private key",
        text: "key.pem:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
        secret: "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
    },
    Secret {
        shape: "PEM key cut off by truncation",
        text: "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQww…",
        secret: "MIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQww",
    },
    Secret {
        shape: "Postgres URL with password",
        text: "psql postgres://app:Hunt3r2-pw@db.internal:5432/prod -c 'select 1'",
        secret: "Hunt3r2-pw",
    },
    Secret {
        shape: "MySQL URL with password",
        text: "DATABASE=mysql://root:s3cr3tR00t@localhost:3306/shop",
        secret: "s3cr3tR00t",
    },
    Secret {
        shape: "Redis URL with password and no user",
        text: "redis-cli -u redis://:R3disP4ss@cache:6379/0 ping",
        secret: "R3disP4ss",
    },
    Secret {
        shape: "MongoDB SRV URL with password",
        text: "mongosh \"mongodb+srv://admin:M0ng0Pw!x@cluster0.ab1cd.mongodb.net/test\"",
        secret: "M0ng0Pw!x",
    },
    Secret {
        shape: "AMQP URL with password",
        text: "connecting to amqp://guest:R4bb1tPw@rabbit:5672/ failed: timeout",
        secret: "R4bb1tPw",
    },
    Secret {
        shape: "HTTPS URL with user and password",
        text: "cat ~/.git-credentials\nhttps://alice:pl41nPassw0rd@git.example.com",
        secret: "pl41nPassw0rd",
    },
    Secret {
        shape: "DB_PASSWORD in .env",
        text: "$ cat .env\nDB_HOST=localhost\nDB_PASSWORD=correct-horse-battery\nDB_PORT=5432",
        secret: "correct-horse-battery",
    },
    Secret {
        shape: "API_TOKEN export",
        text: "export API_TOKEN=tok_9a8b7c6d5e4f && ./deploy.sh",
        secret: "tok_9a8b7c6d5e4f",
    },
    Secret {
        shape: "Django SECRET_KEY",
        text: "SECRET_KEY = 'django-insecure-q8z!r7vx2lm4np6tb'",
        secret: "django-insecure-q8z!r7vx2lm4np6tb",
    },
    Secret {
        shape: "GITHUB_TOKEN export with double quotes",
        text: "export GITHUB_TOKEN=\"not-a-ghp-but-secret-all-the-same\"",
        secret: "not-a-ghp-but-secret-all-the-same",
    },
    Secret {
        shape: "YAML password in docker-compose",
        text: "services:\n  db:\n    environment:\n      MYSQL_ROOT_PASSWORD: 'r00t-Pw-1'\n",
        secret: "r00t-Pw-1",
    },
    Secret {
        shape: "--password= flag",
        text: "mysqldump -u root --password=Tr0ub4dor&3 shop > dump.sql",
        secret: "Tr0ub4dor&3",
    },
    Secret {
        shape: "PGPASSWORD prefix",
        text: "PGPASSWORD=pgS3cret psql -h db -U app",
        secret: "pgS3cret",
    },
    Secret {
        shape: "CLIENT_SECRET in tool output",
        text: "OAuth app created.\nCLIENT_ID=1234\nCLIENT_SECRET=cs_8f14e45fceea167a",
        secret: "cs_8f14e45fceea167a",
    },
    Secret {
        shape: "access_token in a query string",
        text: "GET https://graph.example.com/me?fields=id&access_token=EAAGm0PX4ZCpsBA0ZBq8 200",
        secret: "EAAGm0PX4ZCpsBA0ZBq8",
    },
    Secret {
        shape: "JSON \"password\" inside tool output text",
        text: "$ cat config.json\n{\"user\": \"admin\", \"password\": \"hunter2-but-longer\"}",
        secret: "hunter2-but-longer",
    },
    Secret {
        shape: "JSON \"api_key\" inside tool output text",
        text: "{\n  \"api_key\": \"k-live-0a1b2c3d4e5f\",\n  \"region\": \"eu\"\n}",
        secret: "k-live-0a1b2c3d4e5f",
    },
    Secret {
        shape: "YAML client_secret",
        text: "oauth:\n  client_id: web\n  client_secret: Zm9vYmFyYmF6cXV4\n",
        secret: "Zm9vYmFyYmF6cXV4",
    },
];

/// Payloads whose secrets sit under secret-looking JSON keys: `(shape, payload, secret)`.
fn json_key_secrets() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "JSON key \"password\"",
            json!({"tool_input": {"url": "https://x", "password": "hunter2"}}),
            "hunter2",
        ),
        (
            "JSON key \"api_key\"",
            json!({"tool_input": {"api_key": "plainvalue123"}}),
            "plainvalue123",
        ),
        (
            "JSON key \"client_secret\"",
            json!({"config": {"client_secret": "csecret-xyz"}}),
            "csecret-xyz",
        ),
        (
            "JSON key \"Authorization\"",
            json!({"headers": {"Authorization": "Token abc"}}),
            "Token abc",
        ),
        (
            "JSON key \"x-api-key\"",
            json!({"headers": {"x-api-key": "abc123"}}),
            "abc123",
        ),
        (
            "JSON key \"refresh_token\"",
            json!({"tool_response": {"refresh_token": "rt-1"}}),
            "rt-1",
        ),
        (
            "JSON key \"aws_secret_access_key\"",
            json!({"creds": {"aws_secret_access_key": "wJalrXUtnFEMI"}}),
            "wJalrXUtnFEMI",
        ),
        (
            "JSON key \"DB_PASSWORD\" in an env map",
            json!({"env": {"DB_PASSWORD": "pw"}}),
            "\"pw\"",
        ),
        (
            "JSON key \"cookie\"",
            json!({"request": {"cookie": "sid=abc"}}),
            "sid=abc",
        ),
    ]
}

/// A text that must come through unchanged, with why.
struct LookAlike {
    shape: &'static str,
    text: &'static str,
    why: &'static str,
}

const LOOK_ALIKES: &[LookAlike] = &[
    LookAlike {
        shape: "UUID",
        text: "session 0fbc6975-e498-4c0d-a2a2-497077c17a19 resumed",
        why: "ids are what the dashboard joins on",
    },
    LookAlike {
        shape: "git SHA",
        text: "commit 1f2e3d4c5b6a79880716253443526170ffeeddcc\nAuthor: Dev <dev@example.com>",
        why: "hex of 40 is a commit, not a key",
    },
    LookAlike {
        shape: "short git SHA",
        text: "HEAD is now at 1f2e3d4 fix typo",
        why: "commit ids",
    },
    LookAlike {
        shape: "SHA-256 digest",
        text: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        why: "image and file digests are public",
    },
    LookAlike {
        shape: "npm integrity",
        text: "\"integrity\": \"sha512-q8Zr7Vx2Lm4Np6Tb9Kc1Hd3Jf5Gs0WyAbCd==\"",
        why: "lockfile hashes are public",
    },
    LookAlike {
        shape: "sk- inside risk-free",
        text: "this is a risk-free refactor of the task-management-dashboard-component",
        why: "sk- only counts at a word start",
    },
    LookAlike {
        shape: "sk- inside kiosk-mode",
        text: "kiosk-mode-enabled-for-all-terminals-in-the-store",
        why: "sk- only counts at a word start",
    },
    LookAlike {
        shape: "short sk-",
        text: "sk-short",
        why: "too short for any key",
    },
    LookAlike {
        shape: "base64 of ordinary text",
        text: "echo SGVsbG8sIHdvcmxkIQ== | base64 -d",
        why: "base64 alone is not a secret shape",
    },
    LookAlike {
        shape: "long base64 of ordinary text",
        text: "VGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcyBvdmVyIHRoZSBsYXp5IGRvZw==",
        why: "base64 alone is not a secret shape",
    },
    LookAlike {
        shape: "password_reset_url in prose",
        text: "set password_reset_url in settings.py before deploying",
        why: "a name without a value",
    },
    LookAlike {
        shape: "PASSWORD_RESET_URL=",
        text: "PASSWORD_RESET_URL=https://example.com/reset",
        why: "the name's last word says the value is a URL",
    },
    LookAlike {
        shape: "TOKEN_COUNT=5",
        text: "TOKEN_COUNT=5 python bench.py",
        why: "a count, not a token",
    },
    LookAlike {
        shape: "TOKEN_LIMIT=",
        text: "export TOKEN_LIMIT=100000",
        why: "a limit, not a token",
    },
    LookAlike {
        shape: "SECRET_KEY_FILE=",
        text: "SECRET_KEY_FILE=/run/secrets/django",
        why: "a path to a secret, not the secret",
    },
    LookAlike {
        shape: "PASSWORD_MIN_LENGTH=",
        text: "PASSWORD_MIN_LENGTH=12",
        why: "a length",
    },
    LookAlike {
        shape: "OAUTH_TOKEN_URL=",
        text: "OAUTH_TOKEN_URL=https://oauth2.googleapis.com/token",
        why: "an endpoint",
    },
    LookAlike {
        shape: "token_type: bearer",
        text: "token_type: bearer",
        why: "a type name",
    },
    LookAlike {
        shape: "API_KEY=$VAR reference",
        text: "export API_KEY=$VAULT_API_KEY",
        why: "a variable reference holds no secret",
    },
    LookAlike {
        shape: "TOKEN=${VAR} reference",
        text: "TOKEN=${GITHUB_TOKEN} gh pr list",
        why: "a variable reference holds no secret",
    },
    LookAlike {
        shape: "input_tokens=25",
        text: "usage: input_tokens=25 output_tokens=130",
        why: "usage counts (plural names)",
    },
    LookAlike {
        shape: "max_tokens: 4096",
        text: "max_tokens: 4096",
        why: "a request parameter",
    },
    LookAlike {
        shape: "\"tokens\": 1234 in text",
        text: "{\"tokens\": 1234, \"cache_read_input_tokens\": 3000}",
        why: "usage counts",
    },
    LookAlike {
        shape: "passwords_checked=3",
        text: "passwords_checked=3 failures=0",
        why: "plural name: a count",
    },
    LookAlike {
        shape: "token count in prose",
        text: "the token count is 5",
        why: "no assignment",
    },
    LookAlike {
        shape: "the secret to in prose",
        text: "The secret to good tests is determinism.",
        why: "no assignment",
    },
    LookAlike {
        shape: "Password: prompt then next line",
        text: "Password:\nsu: Authentication failure",
        why: "an empty value must not swallow the next line",
    },
    LookAlike {
        shape: "echo $API_KEY",
        text: "echo $API_KEY | wc -c",
        why: "a reference, no value",
    },
    LookAlike {
        shape: "Bearer $TOKEN",
        text: "curl -H \"Authorization: Bearer $TOKEN\" https://api.example.com",
        why: "a variable reference",
    },
    LookAlike {
        shape: "Bearer <token> placeholder",
        text: "send Authorization: Bearer <token> with each request",
        why: "a placeholder",
    },
    LookAlike {
        shape: "bearer token in prose",
        text: "Use a bearer token for authentication",
        why: "the word after bearer is too short to be a token",
    },
    LookAlike {
        shape: "plain https URL",
        text: "https://example.com/path?x=1&page=2",
        why: "no credentials",
    },
    LookAlike {
        shape: "URL with port",
        text: "http://localhost:8080/api/v1/health",
        why: "a port is not a password",
    },
    LookAlike {
        shape: "git SSH remote",
        text: "git@github.com:acme/app.git",
        why: "a user name, no password",
    },
    LookAlike {
        shape: "ssh URL with user",
        text: "ssh://git@github.com/acme/app.git",
        why: "a user name, no password",
    },
    LookAlike {
        shape: "Postgres URL without password",
        text: "postgres://app@db:5432/prod",
        why: "no password",
    },
    LookAlike {
        shape: "email address",
        text: "mail alice@example.com about the release",
        why: "not a credential",
    },
    LookAlike {
        shape: "tool use id",
        text: "toolu_183802d7c00548d68bda7b83",
        why: "ids",
    },
    LookAlike {
        shape: "message id",
        text: "msg_01XFDUDYJgAACzvnptvVoYEL",
        why: "ids",
    },
    LookAlike {
        shape: "request id",
        text: "request-id: req_011CSHoEeqs5C35K2UUqR7Fy",
        why: "ids",
    },
    LookAlike {
        shape: "AKIA prefix in prose",
        text: "AWS key ids start with AKIA or ASIA",
        why: "a prefix alone",
    },
    LookAlike {
        shape: "ghp_ prefix in prose",
        text: "classic tokens start with ghp_ and fine-grained ones with github_pat_",
        why: "a prefix alone",
    },
    LookAlike {
        shape: "xoxb- prefix in prose",
        text: "Slack bot tokens look like xoxb-…",
        why: "a prefix alone",
    },
    LookAlike {
        shape: "AIza prefix in prose",
        text: "Google API keys begin with AIza",
        why: "a prefix alone",
    },
    LookAlike {
        shape: "glpat- prefix in prose",
        text: "GitLab tokens begin with glpat- followed by 20 characters",
        why: "a prefix alone",
    },
    LookAlike {
        shape: "npm_config variable",
        text: "npm_config_cache=/tmp/npm-cache npm ci",
        why: "npm's own settings",
    },
    LookAlike {
        shape: "JWT header alone",
        text: "header eyJhbGciOiJIUzI1NiJ9 only",
        why: "one segment is not a token",
    },
    LookAlike {
        shape: "PEM public key",
        text: "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
        why: "public keys are public",
    },
    LookAlike {
        shape: "PEM certificate",
        text: "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUF\n-----END CERTIFICATE-----",
        why: "certificates are public",
    },
    LookAlike {
        shape: "ssh public key",
        text: "PUBLIC_KEY=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIq8Zr7Vx2Lm4Np6Tb dev@laptop",
        why: "public keys are public",
    },
    LookAlike {
        shape: "x-api-key mentioned",
        text: "send the x-api-key header on every call",
        why: "a header name, no value",
    },
    LookAlike {
        shape: "Slack docs URL",
        text: "see https://api.slack.com/messaging/webhooks",
        why: "not a webhook",
    },
    LookAlike {
        shape: "basic in prose",
        text: "basic configuration is documented in CONFIGURATION.md",
        why: "Basic only counts after Authorization",
    },
    LookAlike {
        shape: "version string",
        text: "released v1.2.3-rc.1+build.456",
        why: "not a credential",
    },
    LookAlike {
        shape: "hyphenated slug",
        text: "the-quick-brown-fox-jumps-over-the-lazy-dog",
        why: "not a credential",
    },
    LookAlike {
        shape: "file path",
        text: "ls -la /home/dev/.ssh/id_rsa.pub ~/.aws/config",
        why: "a path, not a key",
    },
    LookAlike {
        shape: "s3 URL",
        text: "aws s3 cp ./dist s3://acme-assets/app/ --recursive",
        why: "no credentials",
    },
];

/// JSON payloads whose keys look secret-ish but are not: they must come through unchanged.
fn json_key_look_alikes() -> Vec<(&'static str, Value)> {
    vec![
        (
            "usage counts under token keys",
            json!({"usage": {"input_tokens": 25, "output_tokens": 130, "max_tokens": 4096}}),
        ),
        (
            "password_reset_url key",
            json!({"settings": {"password_reset_url": "https://example.com/reset"}}),
        ),
        ("secretary key", json!({"contact": {"secretary": "Ann"}})),
        ("token_type key", json!({"oauth": {"token_type": "Bearer"}})),
        ("token_count number", json!({"stats": {"token_count": 5}})),
    ]
}

/// True when no part of `v` contains `needle`.
fn json_lacks(v: &Value, needle: &str) -> bool {
    !serde_json::to_string(v).unwrap().contains(needle)
}

#[test]
fn redaction_corpus() {
    let mut rows: Vec<(String, &str, bool, bool)> = Vec::new();
    let mut failures = Vec::new();

    for c in SECRETS {
        let out = redact_str(c.text);
        let str_ok = !out.contains(c.secret) && out.contains(REDACTED);
        let mut payload = json!({"hook_event_name": "PostToolUse", "tool_input": {"command": c.text},
                                 "tool_response": {"stdout": c.text}, "prompt": c.text});
        redact_json(&mut payload);
        let json_ok = json_lacks(&payload, c.secret);
        rows.push((c.shape.into(), "secret", str_ok, json_ok));
        if !(str_ok && json_ok) {
            failures.push(format!("secret survived: {} -> {out:?}", c.shape));
        }
    }
    for (shape, mut payload, secret) in json_key_secrets() {
        redact_json(&mut payload);
        let ok = json_lacks(&payload, secret);
        rows.push((shape.into(), "secret (key)", ok, ok));
        if !ok {
            failures.push(format!("secret survived: {shape} -> {payload}"));
        }
    }
    for c in LOOK_ALIKES {
        let out = redact_str(c.text);
        let str_ok = out == c.text;
        let original = json!({"tool_input": {"command": c.text}, "prompt": c.text});
        let mut payload = original.clone();
        redact_json(&mut payload);
        let json_ok = payload == original;
        rows.push((c.shape.into(), "look-alike", str_ok, json_ok));
        if !(str_ok && json_ok) {
            failures.push(format!(
                "look-alike changed: {} ({}) -> {out:?}",
                c.shape, c.why
            ));
        }
    }
    for (shape, original) in json_key_look_alikes() {
        let mut payload = original.clone();
        redact_json(&mut payload);
        let ok = payload == original;
        rows.push((shape.into(), "look-alike (key)", ok, ok));
        if !ok {
            failures.push(format!("look-alike changed: {shape} -> {payload}"));
        }
    }

    println!(
        "{:<48} {:<17} {:<9} {:<9}",
        "shape", "kind", "string", "json"
    );
    for (shape, kind, s, j) in &rows {
        let verdict = |ok: bool| match (kind.starts_with("secret"), ok) {
            (true, true) => "redacted",
            (true, false) => "MISSED",
            (false, true) => "kept",
            (false, false) => "CHANGED",
        };
        println!(
            "{shape:<48} {kind:<17} {:<9} {:<9}",
            verdict(*s),
            verdict(*j)
        );
    }
    let secrets = rows.iter().filter(|r| r.1.starts_with("secret")).count();
    let look_alikes = rows.len() - secrets;
    println!(
        "\n{secrets} secret shapes, {look_alikes} look-alikes, {} failures",
        failures.len()
    );
    assert!(secrets >= 50 && look_alikes >= 50);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
