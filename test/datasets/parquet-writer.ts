/**
 * Writes small Parquet files for the tests and the committed fixtures (hyparquet-writer, a
 * dev dependency): string, integer, float and chat-message columns, the last in the layout
 * pyarrow and the Hugging Face `datasets` library write for list<struct<content, role>>
 * (a LIST group, a repeated `list` group, an optional `element` struct).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { parquetWriteFile } from 'hyparquet-writer';

export type ParquetColumn =
  | { name: string; kind: 'string'; data: (string | null)[] }
  | { name: string; kind: 'int64'; data: (bigint | null)[] }
  | { name: string; kind: 'double'; data: (number | null)[] }
  | { name: string; kind: 'messages'; data: ({ role: string; content: string | null }[] | null)[] };

type SchemaElement = { name: string; type?: string; converted_type?: string; repetition_type?: string; num_children?: number };

function schemaOf(c: ParquetColumn): SchemaElement[] {
  switch (c.kind) {
    case 'string':
      return [{ name: c.name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' }];
    case 'int64':
      return [{ name: c.name, type: 'INT64', repetition_type: 'OPTIONAL' }];
    case 'double':
      return [{ name: c.name, type: 'DOUBLE', repetition_type: 'OPTIONAL' }];
    case 'messages':
      return [
        { name: c.name, repetition_type: 'OPTIONAL', num_children: 1, converted_type: 'LIST' },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', repetition_type: 'OPTIONAL', num_children: 2 },
        { name: 'content', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
        { name: 'role', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
      ];
  }
}

/** Writes `columns` to `path` (snappy-compressed; `rowGroupSize` rows per row group). */
export function writeParquet(path: string, columns: ParquetColumn[], options: { rowGroupSize?: number } = {}): void {
  mkdirSync(dirname(path), { recursive: true });
  const schema = [{ name: 'schema', num_children: columns.length }, ...columns.flatMap(schemaOf)];
  parquetWriteFile({
    filename: path,
    columnData: columns.map((c) => ({ name: c.name, data: c.kind === 'messages' ? c.data.map((m) => m && m.map(({ content, role }) => ({ content, role }))) : c.data })),
    schema: schema as never,
    rowGroupSize: options.rowGroupSize ?? 1000,
    createdBy: 'rlvr test fixtures (hyparquet-writer)',
  });
}
