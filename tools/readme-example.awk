# Print the C program between the lines "<!-- readme-example -->" and the end of the fenced
# block that follows it in README.md, so that the build compiles exactly what README shows.
/^<!-- readme-example -->$/ { armed = 1; next }
armed && /^```c$/ { inside = 1; next }
inside && /^```$/ { exit }
inside { print }
