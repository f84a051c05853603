package dev.segstore.it;

import org.junit.jupiter.api.Test;

import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.SimpleJavaFileObject;
import javax.tools.ToolProvider;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The README's broker example compiles exactly as printed: its imports as they are, its statements in a method,
 * against the engines' class path. (With {@code import dev.segstore.adapter.*} a type named {@code Record} was
 * ambiguous with {@code java.lang.Record}; the type is {@code StoredRecord} now.)
 */
class ReadmeExampleCompilesTest {

    /** The first java block after the heading, split into its import lines and the rest. */
    static String[] example(String readme, String heading) {
        int at = readme.indexOf(heading);
        assertTrue(at >= 0, "the README has no '" + heading + "' section");
        int start = readme.indexOf("```java\n", at);
        int end = readme.indexOf("```", start + 8);
        assertTrue(start > 0 && end > start, "no java block under '" + heading + "'");
        StringBuilder imports = new StringBuilder();
        StringBuilder body = new StringBuilder();
        for (String line : readme.substring(start + 8, end).split("\n")) {
            (line.startsWith("import ") ? imports : body).append(line).append('\n');
        }
        return new String[] {imports.toString(), body.toString()};
    }

    @Test
    void theBrokerExampleCompilesAsPrinted() throws Exception {
        String[] parts = example(Files.readString(Path.of("..", "README.md")), "## Use it from a broker");
        String source = parts[0] + "\nclass ReadmeExample {\n    void run() throws Exception {\n" + parts[1] + "    }\n}\n";
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        assertNotNull(javac, "a JDK, not a JRE");
        DiagnosticCollector<JavaFileObject> diagnostics = new DiagnosticCollector<>();
        JavaFileObject file = new SimpleJavaFileObject(URI.create("string:///ReadmeExample.java"), JavaFileObject.Kind.SOURCE) {
            @Override
            public CharSequence getCharContent(boolean ignoreEncodingErrors) {
                return source;
            }
        };
        Path out = Files.createTempDirectory("readme-example");
        List<String> options = List.of("-classpath", System.getProperty("java.class.path"), "-d", out.toString());
        boolean ok = javac.getTask(null, null, diagnostics, options, null, List.of(file)).call();
        List<String> errors = new ArrayList<>();
        for (Diagnostic<? extends JavaFileObject> d : diagnostics.getDiagnostics()) {
            if (d.getKind() == Diagnostic.Kind.ERROR) {
                errors.add("line " + d.getLineNumber() + ": " + d.getMessage(null));
            }
        }
        assertTrue(ok && errors.isEmpty(), "the README example does not compile:\n" + String.join("\n", errors) + "\n---\n" + source);
    }
}
