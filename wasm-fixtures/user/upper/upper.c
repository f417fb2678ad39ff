/* upper: a plain C filter - copies stdin to stdout, upper-casing ASCII letters. */
#include <ctype.h>
#include <stdio.h>

int main(void) {
  int c;
  while ((c = getchar()) != EOF) putchar(toupper(c));
  return 0;
}
