#include <criterion/criterion.h>
Test(control, placeholder_removed_below) {}
