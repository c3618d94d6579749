/** The programs the bench runs, each with the stdout it must produce. */

export interface Program {
  language: string;
  /** Entry file name (what the engine would name it). */
  file: string;
  code: string;
  stdout: string;
}

export const PYTHON_HELLO: Program = { language: 'python', file: 'main.py', code: 'print("hello")', stdout: 'hello\n' };

export const C_HELLO: Program = {
  language: 'c',
  file: 'main.c',
  code: '#include <stdio.h>\n\nint main(void) {\n    puts("hello");\n    return 0;\n}\n',
  stdout: 'hello\n',
};

export const JAVA_HELLO: Program = {
  language: 'java',
  file: 'Main.java',
  code: 'public class Main {\n    public static void main(String[] args) {\n        System.out.println("hello");\n    }\n}\n',
  stdout: 'hello\n',
};

/** 100 MB on stdout in 1 MiB writes: the engine must not hold it (the supervisor forwards 64 KiB). */
export const PYTHON_FLOOD: Program = {
  language: 'python',
  file: 'main.py',
  code: 'import sys\nchunk="x"*1048576\nfor _ in range(100): sys.stdout.write(chunk)',
  stdout: '',
};
