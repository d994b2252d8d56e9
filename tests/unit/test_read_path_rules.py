"""The read path's pure parts: reading the engine's parse tree and its error messages."""

from __future__ import annotations

from clickhouse_connect.driver.exceptions import DatabaseError

from core.reads import _functions, _reason

# EXPLAIN AST of: SELECT file(x), arrayMap(y -> file(y), [..]) FROM url(..) JOIN numbers(2)
TREE = """SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 2)
    Function file (children 1)
     ExpressionList (children 1)
      Identifier x
    Function arrayMap (children 1)
     ExpressionList (children 2)
      Function lambda (children 1)
       ExpressionList (children 2)
        Function tuple (children 1)
         ExpressionList (children 1)
          Identifier y
        Function file (children 1)
         ExpressionList (children 1)
          Identifier y
      Literal Array_['a']
   TablesInSelectQuery (children 2)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      Function url (children 1)
       ExpressionList (children 2)
        Literal 'http://127.0.0.1:9/x'
        Function concat (children 1)
         ExpressionList (children 2)
    TablesInSelectQueryElement (children 2)
     TableJoin
     TableExpression (children 1)
      Function numbers (children 1)
       ExpressionList (children 1)
        Literal UInt64_2""".splitlines()


def test_functions_tell_calls_from_table_functions_at_any_depth() -> None:
    called, sources = _functions(TREE)
    assert called == {"file", "arraymap", "lambda", "tuple", "concat"}
    assert sources == {"url", "numbers"}


def test_a_refusal_names_what_happened_and_keeps_the_engine_message_on_one_line() -> None:
    readonly = DatabaseError(
        "Code: 164. DB::Exception: Code: 164. DB::Exception: Cannot modify 'readonly' setting"
        " in readonly mode. (READONLY) (version 26.9.2.1). (READONLY)", code=164, name="READONLY")
    assert _reason(readonly, 30) == ("refused: the store is read-only for queries"
                                     " (Cannot modify 'readonly' setting in readonly mode"
                                     " (READONLY))")


def test_a_timeout_names_the_limit() -> None:
    timeout = DatabaseError(
        "Code: 159. DB::Exception: Timeout exceeded: elapsed 30001.2 ms, maximum: 30000 ms:"
        " While executing NumbersRange. (TIMEOUT_EXCEEDED)", code=159, name="TIMEOUT_EXCEEDED")
    assert _reason(timeout, 30).startswith("query exceeded the 30 s limit (Timeout exceeded")


def test_a_second_statement_is_named_and_the_vetting_query_is_not_shown() -> None:
    multi = DatabaseError(
        "Code: 62. DB::Exception: Syntax error (Multi-statements are not allowed): failed at"
        " position 9 (end of query): ; DROP TABLE t. : In scope SELECT formatQuerySingleLine("
        "'SELECT 1; DROP TABLE t') AS statement. (SYNTAX_ERROR)", code=62, name="SYNTAX_ERROR")
    reason = _reason(multi, 30)
    assert reason.startswith("refused: one statement at a time (Syntax error")
    assert "formatQuery" not in reason and "\n" not in reason
