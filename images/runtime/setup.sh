#!/bin/sh
# Runs once inside the image build (images/runtime/Dockerfile), as root, without network, on top
# of the debootstrap base. It compiles the supervisor with the image's own gcc and tunes the
# runtimes. Everything it produces must work later with a read-only root file system, uid 65534,
# HOME=/tmp and /tmp a small tmpfs.
set -eu

SRC=/usr/local/src/braindrill
LIB=/usr/local/lib/braindrill
mkdir -p "$LIB"

echo "== bd-supervisor"
gcc -std=gnu11 -O2 -Wall -Wextra -Werror \
	-D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE -pie -Wl,-z,relro,-z,now \
	-o /usr/local/bin/bd-supervisor "$SRC/supervisor.c"
chown root:root /usr/local/bin/bd-supervisor
chmod 0755 /usr/local/bin/bd-supervisor

echo "== warm interpreters"
# Loaders that bd-supervisor --warm starts ahead of a job (config/languages.json "run.warm").
chmod 0444 "$LIB"/warm-*
python3 -c 'import sys; compile(open(sys.argv[1], "rb").read(), sys.argv[1], "exec")' "$LIB/warm-python.py"
node --check "$LIB/warm-node.js"

echo "== javac class-data-sharing archive"
# A dynamic AppCDS archive of the classes javac loads: javac starts ~30% faster with it
# (config/languages.json passes -J-XX:SharedArchiveFile=$LIB/javac.jsa). The JVM flags must match
# the ones used at compile time.
work=$(mktemp -d)
cat >"$work/Warmup.java" <<'EOF'
import java.util.*;
import java.util.function.*;
import java.util.stream.*;

public class Warmup {
    record Point(int x, int y) {}
    enum Kind { A, B }
    interface Shape { double area(); }

    static <T extends Comparable<T>> T max(List<T> items) {
        return items.stream().max(Comparator.naturalOrder()).orElseThrow();
    }

    public static void main(String[] args) throws Exception {
        Map<String, List<Integer>> groups = new HashMap<>();
        Function<Integer, String> key = i -> i % 2 == 0 ? "even" : "odd";
        IntStream.range(0, 10).boxed().forEach(i -> groups.computeIfAbsent(key.apply(i), k -> new ArrayList<>()).add(i));
        Shape s = () -> Math.PI;
        var text = String.format("%s %d %.2f %s", groups, max(List.of(3, 1, 2)), s.area(), new Point(1, 2));
        switch (Kind.valueOf("A")) {
            case A -> System.out.println(text);
            default -> System.out.println("?");
        }
        try (Scanner in = new Scanner(System.in)) {
            while (in.hasNextLine()) System.out.println(in.nextLine().toUpperCase());
        }
    }
}
EOF
(
	cd "$work"
	javac -J-XX:+UseSerialGC -J-XX:TieredStopAtLevel=1 -J-XX:-UsePerfData \
		-J-XX:ArchiveClassesAtExit="$LIB/javac.jsa" -encoding UTF-8 -d . Warmup.java
	java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData -cp . Warmup </dev/null
)
rm -rf "$work"
chmod 0444 "$LIB/javac.jsa"

echo "== hardening"
# no-new-privileges already neutralises set-uid programs; remove the bits anyway.
find / -xdev -type f -perm /6000 -exec chmod ug-s {} + 2>/dev/null || true

echo "== toolchains"
for tool in python3 node tsc java javac ruby perl php gcc g++ go rustc bash; do
	command -v "$tool" >/dev/null || { echo "setup.sh: $tool is missing from the image" >&2; exit 1; }
done
python3 --version
echo "node $(node --version), tsc $(tsc --version)"
java -version 2>&1 | head -n 1
ruby --version
perl -e 'print "perl $^V\n"'
php --version | head -n 1
gcc --version | head -n 1
g++ --version | head -n 1
go version
rustc --version
bash --version | head -n 1
