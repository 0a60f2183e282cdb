
ß
½
 
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
outœ
+
 com.anthropic.claude_code.events2.1.197ì	À®§Xë*
claude_code.hook_registered2 
deployment.environment
demo2
test.run
out2M
user.idB
@4c54758353972b02d86365a8f570956f9cdcbe82184b067189e6a9056e8c6cde24

session.id&
$0fbc6975-e498-4c0d-a2a2-497077c17a192
terminal.type
xterm2

event.name
hook_registered2-
event.timestamp
2026-11-25T16:55:30.763Z2
event.sequence2

hook_event

PreToolUse2
	hook_type	
command2 
hook_source
projectSettings2
	safe_mode
false2
hook_matcher
*YÀ®§Xë