
Ì
Ω
 
deployment.environment
demo

	host.arch
amd64

os.type
linux


os.version
6.18.44-fc-v769

service.name
claude-code

service.version	
2.1.197

test.run
out™
$
com.anthropic.claude_code2.1.197Å
claude_code.cost.usageCost of the Claude Code sessionUSD:¿
π¿Äå”XÎÄÓÓﬁXÎ!_ŒQ⁄;?: 
deployment.environment
demo:
test.run
out:M
user.idB
@4c54758353972b02d86365a8f570956f9cdcbe82184b067189e6a9056e8c6cde:4

session.id&
$0fbc6975-e498-4c0d-a2a2-497077c17a19:
terminal.type
xterm:
model
claude-opus-4-8[1m]:
query_source
main:
effort
high